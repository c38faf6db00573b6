"""What every stage shares: the Document and its files, counters, ids and seeds,
atomic writes, progress lines and the output layout. Imports no other stage.
"""
