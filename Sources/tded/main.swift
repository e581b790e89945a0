// Placeholder: the tded command is built in issue 2.
print("tded")
