"""stub"""
Newton = NonlinearCG = None
