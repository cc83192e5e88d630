from sharpen.cli import main

main()
