"""What the cleanroom makes: batches, flasks, culture events, release, product, dose and infusion."""
