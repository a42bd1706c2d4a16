"""The run directory: what one run records (its episodes, its updates, the rules of "solved"),
how it is written atomically, and how runs made elsewhere are imported into the same contract.
"""
