"""The learned rule (LPG) and its meta-learner. Importing the package registers the LPG
rules (lpg_init, pretrained:NAME, rule files and checkpoints) in the rule registry."""

from lpg import rule_io

rule_io.register()
