"""Other ways to read a capture into the same `SmtpSession` values as the native pipeline.

`tshark` reads captures with Wireshark's command-line tool: its file readers (every format
Wireshark opens), its TCP reassembly and its SMTP dissector, and folds what the dissector shows
into sessions with the same `SessionBuilder` the native pipeline uses. It is a second opinion on
a capture and a way in for formats the native reader does not know. Nothing in this package is
needed by the native pipeline.
"""
