"""Long-lived tasks that own state and talk over bounded channels."""
