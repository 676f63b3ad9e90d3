"""_transports"""
