"""opkit verify."""
import argparse
def add_arguments(p: argparse.ArgumentParser) -> None:
    pass
def run(args):
    raise NotImplementedError
