"""_streams"""
