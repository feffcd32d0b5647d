"""ComponentResources of the deploy, one concern per module, and the settings they take."""
