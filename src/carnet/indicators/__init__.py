"""The agency's indicators: how far Carnet reaches, what it holds, how it is used."""
