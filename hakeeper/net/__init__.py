"""hakeeper.net"""
