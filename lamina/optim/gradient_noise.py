"""stub"""
GradientNoise = None
