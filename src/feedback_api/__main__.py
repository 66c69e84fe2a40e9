from feedback_api.cli import app

app()
