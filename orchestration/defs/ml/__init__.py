"""The ML assets: win probabilities and revenue forecasts, trained and scored after the marts."""
