"""The real-traffic lab: real SMTP software talking through an emulated PIX/ASA.

Three network namespaces (client, fw, server) joined by veth pairs; Postfix and aiosmtpd serve,
swaks and `smtplib` send DKIM-signed mail, an NFQUEUE rewriter (or a token-removing proxy) in
the middle does what a Cisco PIX/ASA does to SMTP, and tcpdump records both sides. The scenario
matrix in `scenarios.py` says what each run must show.
"""
