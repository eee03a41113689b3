from workbench.cli import main

__all__: list[str] = []

main()
