"""`longshot demo`: the bundled sample project and the scripted model that builds it."""
