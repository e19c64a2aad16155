"""hakeeper.ctl"""
