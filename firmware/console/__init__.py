"""The technician's serial console (docs/console.md)."""
