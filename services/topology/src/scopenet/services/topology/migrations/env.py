from scopenet.store.migrate import run_env

run_env()
