"""litellm"""
