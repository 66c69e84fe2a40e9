"""APIs of other products, served on our domains so that their clients keep working."""
