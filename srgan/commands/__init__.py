"""The command-line programs behind scripts/ and the `srgan-*` entry points: thin `main()`s."""
