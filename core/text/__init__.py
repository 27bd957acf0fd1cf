"""Text: encoders (MiniLM offline by default, CLIP from a local folder), cleaning, and the
offline keyword chunker."""
