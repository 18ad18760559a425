// Training tests.
