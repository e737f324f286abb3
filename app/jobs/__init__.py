"""The scheduler process (`bridge jobs run`) and one module per job."""
