"""Update rules: the contract between a rule and an agent (`base`), the hand-designed rules
(one per file) and the registry that resolves a rule by name (`registry`)."""
