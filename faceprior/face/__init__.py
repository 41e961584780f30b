"""Faces in photos: detection with 5 landmarks, alignment to a template, paste-back."""
