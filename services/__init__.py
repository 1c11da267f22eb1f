"""scopenet services: one package per service."""
