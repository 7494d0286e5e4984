"""What each client is due: calendar state, and actions whose cadence has elapsed."""
