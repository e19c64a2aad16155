"""hakeeper on D-Bus: every instance, group and server as an object (see dbus/README.md)."""
