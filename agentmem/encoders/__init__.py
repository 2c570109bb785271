"""Encoders layer: text and image embedders (MiniLM, the lean BERT encoder, the image descriptor, open_clip).

Nothing here reads or writes a memory; encoders turn text and pictures into vectors.
"""
