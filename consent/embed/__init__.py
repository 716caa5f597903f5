"""What client sites embed: the banner script, the cookie declaration, and the undeclared-cookie reports."""
