"""Jobs, schedules and sensors of the evalplatform code location."""
