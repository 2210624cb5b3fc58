"""``python -m hepclf`` runs the command line."""

from hepclf.cli import main

main()
