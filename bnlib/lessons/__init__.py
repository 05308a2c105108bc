"""Per-notebook glue: each module holds one lesson's experiments, interactive figures and
exercise checks, so notebook cells stay short and the core of bnlib stays small.
The core (norm, layers, model, train, data) never imports from here."""
