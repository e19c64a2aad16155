"""hakeeper.vrrp"""
