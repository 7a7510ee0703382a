"""A simulated sales organisation that writes realistic CRM, calendar and phone exports plus their ground truth."""
