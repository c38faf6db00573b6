"""What every stage shares: the Document and its files, counters, ids and seeds,
atomic writes, strict config fields, progress lines and the output layout. Imports no other stage.
"""
