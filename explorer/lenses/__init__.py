"""One folder per thing a person can look at; ``contract.py`` says what a lens is and
``registry.py`` lists them."""
