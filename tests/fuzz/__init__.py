"""A structure-aware mutation fuzzer for smtpfw, run as part of the test suite.

Seeds (`seeds`) are mutated (`mutators`, which know the file formats through `layout`); each
mutant is run through the public API and the CLI in forked children with a time and a memory
limit (`harness`); the outcomes are judged (`oracles`), grouped into buckets and shrunk into
reproducers kept in `corpus/` (`buckets`); `campaign` drives it all and `python -m tests.fuzz`
runs a campaign from the command line (`make fuzz`).
"""
