"""The paper's networks and losses (Section 2.2): generator, discriminator, VGG19 content loss."""
