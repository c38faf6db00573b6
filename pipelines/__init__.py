"""Apache Beam wiring: thin DoFns over ``curate`` functions (the filter pipeline arrives with issue 4)."""
