"""Controller-side tools of esia-onboard: readiness report, fleet dashboard, benchmark."""
