"""_backends"""
