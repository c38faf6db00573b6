"""Crawl files to Documents: crawl sources and remote streams, WARC/ARC/WET
readers, HTTP and charset decoding, main-content extraction, and the reference
corpora (Wikipedia, WikiText, Gutenberg) read as Documents.
"""
