"""One module per ``dvtr`` subcommand. Commands parse options, call the library and render progress."""
