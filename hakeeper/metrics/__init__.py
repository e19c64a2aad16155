"""The Prometheus view: a collector over the runtime model and the endpoint that serves it."""
