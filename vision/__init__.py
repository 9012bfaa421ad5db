"""The image core, free of Django: decoding photos within limits, finding faces (YuNet), drawing and
anonymising them, and scoring a detector on WIDER FACE. The apps, the workers, the tests and the
benchmarks share it."""
