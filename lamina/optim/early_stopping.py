"""stub"""
EarlyStopping = None
