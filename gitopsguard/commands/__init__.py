"""Glue between the command line and the stages: build the parts, run the recipe, print the result."""
