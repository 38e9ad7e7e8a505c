"""What every app uses and no domain owns: model bases, bulk writes, pagination, health checks, logs."""
